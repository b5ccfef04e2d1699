def find_anagrams(word, candidates):
    lower = word.lower()
    key = sorted(lower)
    return [c for c in candidates if c.lower() != lower and sorted(c.lower()) == key]
