#include "tests/testlib.h"
int main(void) { return test_finish(); }
