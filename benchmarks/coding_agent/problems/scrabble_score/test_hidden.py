import unittest

from solution import score


class ScrabbleTest(unittest.TestCase):
    def test_lowercase_letter(self):
        self.assertEqual(score("a"), 1)

    def test_uppercase_letter(self):
        self.assertEqual(score("A"), 1)

    def test_valuable_letter(self):
        self.assertEqual(score("f"), 4)

    def test_short_word(self):
        self.assertEqual(score("at"), 2)

    def test_medium_word(self):
        self.assertEqual(score("OxyphenButazone"), 41)

    def test_empty(self):
        self.assertEqual(score(""), 0)

    def test_entire_alphabet(self):
        self.assertEqual(score("abcdefghijklmnopqrstuvwxyz"), 87)
