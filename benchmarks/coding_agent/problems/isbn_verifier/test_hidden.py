import unittest

from solution import is_valid


class IsbnTest(unittest.TestCase):
    def test_valid(self):
        self.assertIs(is_valid("3-598-21508-8"), True)

    def test_invalid_check_digit(self):
        self.assertIs(is_valid("3-598-21508-9"), False)

    def test_x_check(self):
        self.assertIs(is_valid("3-598-21507-X"), True)

    def test_x_in_middle(self):
        self.assertIs(is_valid("3-598-2X507-9"), False)

    def test_no_dashes(self):
        self.assertIs(is_valid("3598215088"), True)

    def test_too_short(self):
        self.assertIs(is_valid("3-598-21507"), False)

    def test_too_long(self):
        self.assertIs(is_valid("3-598-21507-XX"), False)

    def test_empty(self):
        self.assertIs(is_valid(""), False)
