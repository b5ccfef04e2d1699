class Queen:
    def __init__(self, row, column):
        if not 0 <= row <= 7:
            raise ValueError("row not on board")
        if not 0 <= column <= 7:
            raise ValueError("column not on board")
        self.row, self.column = row, column

    def can_attack(self, another_queen):
        dr, dc = self.row - another_queen.row, self.column - another_queen.column
        if dr == 0 and dc == 0:
            raise ValueError("Invalid queen position: both queens in the same square")
        return dr == 0 or dc == 0 or abs(dr) == abs(dc)
