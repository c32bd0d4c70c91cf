module porthole

go 1.26.8

require (
	fyne.io/fyne/v2 v2.7.1
	github.com/godbus/dbus/v5 v5.2.2
	github.com/hashicorp/yamux v0.1.2
	github.com/zalando/go-keyring v0.2.8
	golang.org/x/net v0.62.0
)

require (
	github.com/danieljoos/wincred v1.2.3 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
