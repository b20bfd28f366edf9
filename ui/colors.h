/* ui/colors: the colour pair numbers shared by the screen (which sets them up) and the
 * parts it draws (transcript, panel, status line). Used only when colour is on. */
#ifndef CMIF_UI_COLORS_H
#define CMIF_UI_COLORS_H

enum { UI_PAIR_USER = 1, UI_PAIR_INFO, UI_PAIR_ERROR, UI_PAIR_STATUS, UI_PAIR_REPLACED,
       UI_PAIR_GOOD, UI_PAIR_WARN, UI_PAIR_BAD, UI_PAIR_CODE };

#endif
