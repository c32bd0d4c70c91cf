module porthole

go 1.26.8

require (
	github.com/hashicorp/yamux v0.1.2
	golang.org/x/net v0.62.0
)

require golang.org/x/text v0.43.0 // indirect
