#ifndef TORSIEVE_VERSION_H
#define TORSIEVE_VERSION_H

#define TS_VERSION "0.1.0"

#endif
