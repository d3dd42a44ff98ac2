import ArgumentParser
import CBLAS
print(openblas_get_num_threads())
