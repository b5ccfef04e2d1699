def clean(number):
    for c in number:
        if not (c.isdigit() or c in " .-()+"):
            raise ValueError("invalid character")
    digits = "".join(c for c in number if c.isdigit())
    if len(digits) == 11:
        if digits[0] != "1":
            raise ValueError("11 digits must start with 1")
        digits = digits[1:]
    if len(digits) != 10:
        raise ValueError("wrong number of digits")
    if digits[0] in "01" or digits[3] in "01":
        raise ValueError("area or exchange code starts with 0 or 1")
    return digits
