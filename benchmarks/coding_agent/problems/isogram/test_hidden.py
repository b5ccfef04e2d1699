import unittest

from solution import is_isogram


class IsogramTest(unittest.TestCase):
    def test_empty(self):
        self.assertIs(is_isogram(""), True)

    def test_lowercase_isogram(self):
        self.assertIs(is_isogram("isogram"), True)

    def test_duplicate_letter(self):
        self.assertIs(is_isogram("eleven"), False)

    def test_mixed_case_duplicate(self):
        self.assertIs(is_isogram("Alphabet"), False)

    def test_hyphens(self):
        self.assertIs(is_isogram("six-year-old"), True)

    def test_spaces(self):
        self.assertIs(is_isogram("Emily Jung Schwartzkopf"), True)

    def test_duplicate_after_hyphen(self):
        self.assertIs(is_isogram("thumbscrew-jappingly"), False)
