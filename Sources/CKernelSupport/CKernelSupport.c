// CKernelSupport: the header holds everything; this file exists so SwiftPM builds the target.
#include "CKernelSupport.h"
