import unittest

from solution import EQUAL, SUBLIST, SUPERLIST, UNEQUAL, sublist


class SublistTest(unittest.TestCase):
    def test_constants_distinct(self):
        self.assertEqual(len({EQUAL, SUBLIST, SUPERLIST, UNEQUAL}), 4)

    def test_empty_lists(self):
        self.assertEqual(sublist([], []), EQUAL)

    def test_empty_is_sublist(self):
        self.assertEqual(sublist([], [1, 2, 3]), SUBLIST)

    def test_superlist_of_empty(self):
        self.assertEqual(sublist([1, 2, 3], []), SUPERLIST)

    def test_sublist_in_middle(self):
        self.assertEqual(sublist([2, 3, 4], [1, 2, 3, 4, 5]), SUBLIST)

    def test_superlist_at_end(self):
        self.assertEqual(sublist([0, 1, 2, 3, 4, 5], [3, 4, 5]), SUPERLIST)

    def test_not_contiguous(self):
        self.assertEqual(sublist([1, 3], [1, 2, 3]), UNEQUAL)

    def test_order_matters(self):
        self.assertEqual(sublist([1, 2, 3], [3, 2, 1]), UNEQUAL)
