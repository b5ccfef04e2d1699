def rotate(text, key):
    out = []
    for c in text:
        if "a" <= c <= "z":
            out.append(chr((ord(c) - 97 + key) % 26 + 97))
        elif "A" <= c <= "Z":
            out.append(chr((ord(c) - 65 + key) % 26 + 65))
        else:
            out.append(c)
    return "".join(out)
