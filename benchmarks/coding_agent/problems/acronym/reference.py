import re


def abbreviate(phrase):
    words = re.split(r"[\s-]+", phrase)
    letters = []
    for word in words:
        cleaned = "".join(c for c in word if c.isalpha() or c == "'")
        cleaned = cleaned.lstrip("'")
        if cleaned:
            letters.append(cleaned[0].upper())
    return "".join(letters)
