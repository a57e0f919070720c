/* The release of poolkeeper and the wire API version it speaks. */
#ifndef PK_VERSION_H
#define PK_VERSION_H

#define PK_VERSION "0.1.0"
#define PK_API_VERSION 1

#endif
