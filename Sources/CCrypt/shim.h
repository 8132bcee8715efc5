// libxcrypt (Debian's libcrypt-dev, which libc6-dev depends on): bcrypt for the admin UI's
// password hashes, through crypt_r.
#include <crypt.h>
