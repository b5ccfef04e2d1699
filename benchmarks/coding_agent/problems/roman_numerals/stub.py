def roman(number):
    pass
