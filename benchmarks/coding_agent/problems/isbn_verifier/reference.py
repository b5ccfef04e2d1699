def is_valid(isbn):
    chars = isbn.replace("-", "")
    if len(chars) != 10 or not chars[:9].isdigit() or not (chars[9].isdigit() or chars[9] == "X"):
        return False
    values = [int(c) for c in chars[:9]] + [10 if chars[9] == "X" else int(chars[9])]
    return sum(v * w for v, w in zip(values, range(10, 0, -1))) % 11 == 0
