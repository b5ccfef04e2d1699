import unittest

from solution import is_pangram


class PangramTest(unittest.TestCase):
    def test_empty(self):
        self.assertIs(is_pangram(""), False)

    def test_perfect(self):
        self.assertIs(is_pangram("abcdefghijklmnopqrstuvwxyz"), True)

    def test_classic(self):
        self.assertIs(is_pangram("The quick brown fox jumps over the lazy dog"), True)

    def test_missing_x(self):
        self.assertIs(is_pangram("a quick movement of the enemy will jeopardize five gunboats"), False)

    def test_mixed_case_and_punctuation(self):
        self.assertIs(is_pangram('"Five quacking Zephyrs jolt my wax bed."'), True)

    def test_repeated_case_insensitive_not_enough(self):
        self.assertIs(is_pangram("abcdefghijklm ABCDEFGHIJKLM"), False)
