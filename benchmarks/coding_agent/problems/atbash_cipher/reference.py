import string

TABLE = str.maketrans(string.ascii_lowercase, string.ascii_lowercase[::-1])


def _clean(text):
    return "".join(c for c in text.lower() if c.isalnum() and c.isascii()).translate(TABLE)


def encode(plain_text):
    raw = _clean(plain_text)
    return " ".join(raw[i:i + 5] for i in range(0, len(raw), 5))


def decode(ciphered_text):
    return _clean(ciphered_text)
