import unittest

from solution import is_valid


class LuhnTest(unittest.TestCase):
    def test_single_digit(self):
        self.assertIs(is_valid("1"), False)

    def test_single_zero(self):
        self.assertIs(is_valid("0"), False)

    def test_valid_canadian_sin(self):
        self.assertIs(is_valid("055 444 285"), True)

    def test_valid_credit_card(self):
        self.assertIs(is_valid("4539 3195 0343 6467"), True)

    def test_invalid_credit_card(self):
        self.assertIs(is_valid("8273 1232 7352 0569"), False)

    def test_non_digit(self):
        self.assertIs(is_valid("055a 444 285"), False)

    def test_zeros(self):
        self.assertIs(is_valid("0000 0"), True)

    def test_punctuation(self):
        self.assertIs(is_valid("055-444-285"), False)
