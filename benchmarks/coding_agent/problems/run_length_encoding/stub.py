def decode(text):
    pass


def encode(text):
    pass
