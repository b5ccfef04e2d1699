import re


def encode(text):
    return "".join(
        (str(len(m.group(0))) if len(m.group(0)) > 1 else "") + m.group(1) for m in re.finditer(r"(.)\1*", text)
    )


def decode(text):
    return "".join(ch * int(count or 1) for count, ch in re.findall(r"(\d*)(\D)", text))
