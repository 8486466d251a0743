// Provides std::ios_base_library_init(), which GCC 13's libstdc++ (GLIBCXX_3.4.32) exports and
// libLibTorchSharp.so references. Older libstdc++ runs the same iostream initialisation from
// a static ios_base::Init object, which is all this function has to guarantee.
#include <ios>

namespace std
{
    __attribute__((visibility("default"))) void ios_base_library_init()
    {
        static ios_base::Init init;
    }
}
