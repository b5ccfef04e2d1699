def is_valid(number):
    digits = number.replace(" ", "")
    if len(digits) <= 1 or not digits.isdigit():
        return False
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = int(ch)
        if index % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0
