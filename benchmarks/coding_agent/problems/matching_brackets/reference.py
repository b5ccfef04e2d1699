def is_paired(input_string):
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for c in input_string:
        if c in "([{":
            stack.append(c)
        elif c in pairs:
            if not stack or stack.pop() != pairs[c]:
                return False
    return not stack
