import unittest

from solution import is_leap


class LeapTest(unittest.TestCase):
    def test_not_divisible_by_4(self):
        self.assertIs(is_leap(2015), False)

    def test_divisible_by_4(self):
        self.assertIs(is_leap(1996), True)

    def test_divisible_by_100_not_400(self):
        self.assertIs(is_leap(1900), False)

    def test_divisible_by_400(self):
        self.assertIs(is_leap(2000), True)

    def test_divisible_by_200_not_400(self):
        self.assertIs(is_leap(1800), False)

    def test_divisible_by_2_not_4(self):
        self.assertIs(is_leap(1970), False)
