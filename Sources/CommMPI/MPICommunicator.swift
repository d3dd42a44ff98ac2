import CMPI
import Comm
