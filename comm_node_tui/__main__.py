from comm_node_tui.cli import main

raise SystemExit(main())
