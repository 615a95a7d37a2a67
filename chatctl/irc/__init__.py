"""IRC, without sockets: lines, what IRC clients' commands mean in chatctl, and how
chatctl's frames read on IRC. The server's door (``chatctl.server.irc``) wires it up;
docs/irc.md says what is supported."""
