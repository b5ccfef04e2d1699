import unittest

from solution import Queen


class QueenAttackTest(unittest.TestCase):
    def test_valid_position(self):
        Queen(2, 2)

    def test_negative_row(self):
        with self.assertRaises(ValueError):
            Queen(-2, 2)

    def test_row_off_board(self):
        with self.assertRaises(ValueError):
            Queen(8, 4)

    def test_column_off_board(self):
        with self.assertRaises(ValueError):
            Queen(4, 8)

    def test_cannot_attack(self):
        self.assertIs(Queen(2, 4).can_attack(Queen(6, 6)), False)

    def test_same_row(self):
        self.assertIs(Queen(2, 4).can_attack(Queen(2, 6)), True)

    def test_same_column(self):
        self.assertIs(Queen(4, 5).can_attack(Queen(2, 5)), True)

    def test_diagonal(self):
        self.assertIs(Queen(2, 2).can_attack(Queen(0, 4)), True)

    def test_same_square(self):
        with self.assertRaises(ValueError):
            Queen(7, 7).can_attack(Queen(7, 7))
