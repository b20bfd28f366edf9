/* app/xdg: XDG base directories (state, config, cache) for cmif's own files. */
#ifndef CMIF_APP_XDG_H
#define CMIF_APP_XDG_H

#include <stddef.h>

enum xdg_kind { XDG_STATE = 0, XDG_CONFIG, XDG_CACHE };

/* $XDG_STATE_HOME/cmif (else ~/.local/state/cmif), likewise config and cache. The
 * directory is created (mode 0700, parents too) when create is set. 0, or -1 with err. */
int xdg_dir(int kind, int create, char *buf, size_t cap, char *err, size_t errlen);
/* dir/name in buf; -1 when it does not fit. */
int xdg_path(int kind, const char *name, int create, char *buf, size_t cap, char *err,
             size_t errlen);

#endif
