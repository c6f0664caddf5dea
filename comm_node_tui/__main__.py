from comm_node_tui.entry import main

raise SystemExit(main())
