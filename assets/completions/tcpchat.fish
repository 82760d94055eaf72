complete -c tcpchat -l local -d 'Local mode\'s address: join the room there, hosting it first if nobody listens' -r
complete -c tcpchat -l config -d 'Read settings from FILE instead of $XDG_CONFIG_HOME/tcpchat/config.toml (flags win)' -r -F
complete -c tcpchat -l listen -d 'Address to listen on with --serve (HOST:PORT, [IPv6]:PORT or PORT; port 0 picks a free one)' -r
complete -c tcpchat -l mode -d 'What the server speaks: a chat room, or one of the article\'s two servers' -r -f -a "chat\t'A multi-user room: greeting, `<nick> text` to everyone, `*** ` events, `/` commands, rooms and private messages'
echo\t'The article\'s `server.py`: `连接成功!`, then `第N条信息:` + each read echoed back'
ack\t'The article\'s threaded server: `Hello World!`, then `<1..=1000>:ACK!` per read'"
complete -c tcpchat -l nick -d 'Ask for this nick once connected (1-24 characters, no spaces)' -r
complete -c tcpchat -l export -d 'On quitting, write the TCP session as the inspector saw it to FILE, as text to hand in or diff against another run: the timeline, the handshake and close with what each arrow rests on, the kernel\'s last figures, the reads' -r -F
complete -c tcpchat -l pcap -d 'Capture the session\'s segments as they cross loopback and, on quitting, write them to FILE as a capture file Wireshark and tcpdump open (Linux; needs root or CAP_NET_RAW)' -r -F
complete -c tcpchat -l theme -d 'Colours: 16 (the terminal\'s own, which follow its theme), dark or light (256-colour picks for that background). NO_COLOR turns colour off whatever this says' -r -f -a "16\t'The terminal\'s own 16 colours, which follow its theme (the default)'
dark\t'256-colour picks that read well on a dark background'
light\t'256-colour picks that read well on a light background'"
complete -c tcpchat -l lang -d 'The TUI\'s own words (status bar, help, notes): en, zh (中文), or auto from LC_ALL, LC_MESSAGES, LANG. What the server sends is shown as it is' -r -f -a "auto\t'From LC_ALL, LC_MESSAGES or LANG (zh_CN.UTF-8 and other zh locales: 中文)'
en\t'English'
zh\t'中文'"
complete -c tcpchat -l scrollback -d 'Lines of scrollback kept' -r
complete -c tcpchat -l max-line -d 'Longest line in bytes; a longer one is refused with a `! ` line and skipped' -r
complete -c tcpchat -l max-clients -d 'Most concurrent connections; one more is told `! server full` and closed' -r
complete -c tcpchat -l outbox -d 'Lines queued per client before a client that does not read is dropped as too slow' -r
complete -c tcpchat -l outbox-bytes -d 'Bytes queued per client before a client that does not read is dropped as too slow (its own replies count: it is not read while its queue is half full)' -r
complete -c tcpchat -l flood-rate -d 'Lines per second a client may send after its burst (0 = unlimited); excess lines are delayed, never dropped' -r
complete -c tcpchat -l flood-burst -d 'Lines a client may send back to back before the flood rate applies' -r
complete -c tcpchat -l line-timeout -d 'Seconds a client has to finish a line it has begun (slowloris defence)' -r
complete -c tcpchat -l keepalive -d 'TCP keepalive idle seconds, so clients that vanish without FIN are noticed' -r
complete -c tcpchat -l announce-up-to -d 'Largest room in which every join and leave is announced to everyone' -r
complete -c tcpchat -l rooms-per-client -d 'Most rooms one client may be in at once, #lobby included' -r
complete -c tcpchat -l max-rooms -d 'Most rooms the server holds at once, #lobby included' -r
complete -c tcpchat -l room-members -d 'Most members one room holds (#lobby is bounded by --max-clients)' -r
complete -c tcpchat -l data-dir -d 'Where the server keeps its store (history): default $XDG_DATA_HOME/tcpchat. Local mode\'s room uses it too; so do the TLS certificate (DATA_DIR/tls) and the client\'s pinned keys (DATA_DIR/known_hosts)' -r -F
complete -c tcpchat -l history -d 'Lines of history replayed to each client as it joins (0: none)' -r
complete -c tcpchat -l retain -d 'Days history is kept (0: keep nothing, open no store)' -r
complete -c tcpchat -l retain-lines -d 'Most lines of history kept per room; the oldest beyond go first' -r
complete -c tcpchat -l op -d 'An operator\'s account (repeatable): logged in as it, one may /kick, /ban, /unban, /bans, /mute. Needs the store (not --retain 0)' -r
complete -c tcpchat -l password-file -d 'A file whose first line is the server\'s password; clients send /pass PASSWORD first. (A file, not a flag: `ps` shows flags to everyone.)' -r -F
complete -c tcpchat -l max-per-address -d 'Most connections open at once from one address (0: no cap; 127.0.0.1 and ::1 exempt)' -r
complete -c tcpchat -l new-per-minute -d 'Most new connections one address may open per minute (0: no cap; 127.0.0.1 and ::1 exempt)' -r
complete -c tcpchat -l allow -d 'Only addresses in this network may connect (repeatable), e.g. 10.0.0.0/8' -r
complete -c tcpchat -l deny -d 'Addresses in this network may not connect (repeatable)' -r
complete -c tcpchat -l tls-cert -d 'The certificate chain to serve (PEM, leaf first), with --tls-key; implies --tls' -r -F
complete -c tcpchat -l tls-key -d 'The private key of --tls-cert (PEM)' -r -F
complete -c tcpchat -l tls-handshake-timeout -d 'Seconds a TLS client has from connecting to a finished handshake' -r
complete -c tcpchat -l tls-ca -d 'Also trust the CA certificates in FILE (PEM), e.g. a private CA' -r -F
complete -c tcpchat -l tls-forget -d 'Forget the TLS key pinned for HOST:PORT (after its server\'s key changed), then exit; the next --tls connection pins the key it is shown' -r
complete -c tcpchat -l backlog -d 'listen()\'s backlog: finished handshakes the kernel queues for accept() (capped at net.core.somaxconn); past it a client\'s SYN is dropped and retried, not refused' -r
complete -c tcpchat -l log-file -d 'Append the lifecycle log to FILE instead of stderr (created private, 0600)' -r -F
complete -c tcpchat -l cluster -d 'Be one node of several, which meet through the Redis at URL (redis://HOST:PORT[/DB]); needs --node. Without it the server is a single node with its own store' -r
complete -c tcpchat -l node -d 'This node\'s name in the cluster: 1-32 ASCII letters, digits, \'.\', \'_\' or \'-\', one live node per name. Its copy of the history is kept in DATA_DIR/node-NAME' -r
complete -c tcpchat -l print-config -d 'Show every setting in force and where it came from (flag, config file, default)'
complete -c tcpchat -l serve -d 'Run a headless server; its lifecycle log goes to stderr'
complete -c tcpchat -l raw -d 'Send exactly what was typed, with no newline (for the article\'s servers, which compare each read with b\'exit\')'
complete -c tcpchat -l log -d 'Write what each room shows to a plain text file per room and day, under DATA_DIR/transcripts'
complete -c tcpchat -l no-bell -d 'Never ring the terminal bell (it rings once when a line names you or someone writes to you privately)'
complete -c tcpchat -l tls -d 'Speak TLS. Server: with a self-signed certificate made on first run and kept in DATA_DIR/tls, unless --tls-cert and --tls-key name one; SIGHUP then reloads the certificate instead of stopping. Client: connect with TLS; a certificate that chains to no trusted root is pinned on first use (DATA_DIR/known_hosts)'
complete -c tcpchat -l tls-insecure -d 'Trust any certificate. The session is still encrypted, but anyone on the path could be the other end: no chain, name or pinned key is checked'
complete -c tcpchat -l no-reuseaddr -d 'Do not set SO_REUSEADDR: a restart then cannot bind while a connection on the port waits out TIME-WAIT (EADDRINUSE)'
complete -c tcpchat -l pause-accept -d 'Listen but accept() nothing until SIGUSR1 (kill -USR1 PID): clients finish the handshake into the accept queue and wait, ungreeted; past the backlog their SYNs are dropped. (Unix.)'
complete -c tcpchat -s v -l verbose -d 'More detail in the log: -v shows each read (recv N bytes). RUST_LOG, if set, wins'
complete -c tcpchat -s q -l quiet -d 'Log only warnings and errors (not every connection). RUST_LOG, if set, wins'
complete -c tcpchat -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tcpchat -s V -l version -d 'Print version'
