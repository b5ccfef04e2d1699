import unittest

from solution import decode, encode


class RunLengthTest(unittest.TestCase):
    def test_encode_empty(self):
        self.assertEqual(encode(""), "")

    def test_encode_singles(self):
        self.assertEqual(encode("XYZ"), "XYZ")

    def test_encode_runs(self):
        self.assertEqual(encode("WWWWWWWWWWWWBWWWWWWWWWWWWBBBWWWWWWWWWWWWWWWWWWWWWWWWB"), "12WB12W3B24WB")

    def test_encode_spaces(self):
        self.assertEqual(encode("  hsqq qww  "), "2 hs2q q2w2 ")

    def test_decode_empty(self):
        self.assertEqual(decode(""), "")

    def test_decode_runs(self):
        self.assertEqual(decode("12WB12W3B24WB"), "WWWWWWWWWWWWBWWWWWWWWWWWWBBBWWWWWWWWWWWWWWWWWWWWWWWWB")

    def test_round_trip(self):
        self.assertEqual(decode(encode("zzz ZZ  zZ")), "zzz ZZ  zZ")
