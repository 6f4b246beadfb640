/* detq's C shim over libjpeg and libpng: setjmp lives here, never in Swift. */
#pragma once
