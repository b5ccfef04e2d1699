def is_valid(number):
    pass
