EQUAL = None
SUBLIST = None
SUPERLIST = None
UNEQUAL = None


def sublist(list_one, list_two):
    pass
