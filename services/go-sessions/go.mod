module clw/go-sessions

go 1.19
