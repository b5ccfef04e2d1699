import unittest

from solution import decode, encode


class AtbashTest(unittest.TestCase):
    def test_encode_yes(self):
        self.assertEqual(encode("yes"), "bvh")

    def test_encode_uppercase(self):
        self.assertEqual(encode("OMG"), "lnt")

    def test_encode_spaces(self):
        self.assertEqual(encode("O M G"), "lnt")

    def test_encode_digits(self):
        self.assertEqual(encode("Testing,1 2 3, testing."), "gvhgr mt123 gvhgr mt")

    def test_encode_sentence(self):
        self.assertEqual(encode("The quick brown fox jumps over the lazy dog."),
                         "gsvjf rxpyi ldmul cqfnk hlevi gsvoz abwlt")

    def test_decode_word(self):
        self.assertEqual(decode("vcvix rhn"), "exercism")

    def test_decode_numbers(self):
        self.assertEqual(decode("gvhgr mt123 gvhgr mt"), "testing123testing")
