import unittest

from solution import is_armstrong_number


class ArmstrongTest(unittest.TestCase):
    def test_zero(self):
        self.assertIs(is_armstrong_number(0), True)

    def test_single_digit(self):
        self.assertIs(is_armstrong_number(5), True)

    def test_two_digits(self):
        self.assertIs(is_armstrong_number(10), False)

    def test_three_digit_armstrong(self):
        self.assertIs(is_armstrong_number(153), True)

    def test_three_digit_not(self):
        self.assertIs(is_armstrong_number(100), False)

    def test_seven_digit_armstrong(self):
        self.assertIs(is_armstrong_number(9926315), True)

    def test_seven_digit_not(self):
        self.assertIs(is_armstrong_number(9926314), False)
