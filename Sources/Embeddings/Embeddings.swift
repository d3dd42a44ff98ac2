import Comm
