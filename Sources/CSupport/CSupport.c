// CSupport: everything lives in the header (static inline); this file gives the target a source.
#include "CSupport.h"
