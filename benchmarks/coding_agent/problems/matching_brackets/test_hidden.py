import unittest

from solution import is_paired


class MatchingBracketsTest(unittest.TestCase):
    def test_pair(self):
        self.assertIs(is_paired("[]"), True)

    def test_empty(self):
        self.assertIs(is_paired(""), True)

    def test_unpaired(self):
        self.assertIs(is_paired("[["), False)

    def test_wrong_order(self):
        self.assertIs(is_paired("}{"), False)

    def test_nested(self):
        self.assertIs(is_paired("{[()]}"), True)

    def test_crossed(self):
        self.assertIs(is_paired("[({]})"), False)

    def test_math(self):
        self.assertIs(is_paired("(((185 + 223.85) * 15) - 543)/2"), True)

    def test_early_close(self):
        self.assertIs(is_paired("{[)][]}"), False)
