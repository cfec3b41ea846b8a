//! Output policy: colour and TTY detection, sanitising of strings that came from packets.
//! Strings from the wire never reach a terminal unescaped.
