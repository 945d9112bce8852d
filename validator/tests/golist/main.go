// golist lists a tar stream read from standard input with Go's
// archive/tar, the reader umoci, skopeo, podman and containerd use: one
// JSON object per header that Reader.Next returns, then one object for how
// the stream ended. Names and link targets are hex-encoded, byte for byte.
// It reads no entry's data: Next skips what is left of it, as it does for
// a consumer that ignores an entry. With -gzip the input is a gzip stream
// (members concatenated), read with Go's compress/gzip first.
//
//	{"name":"6574632f","linkname":"","typeflag":48,"size":5}
//	{"end":"eof"} or {"error":"archive/tar: invalid tar header"}
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
)

type entry struct {
	Name     string `json:"name"`
	Linkname string `json:"linkname"`
	Typeflag byte   `json:"typeflag"`
	Size     int64  `json:"size"`
}

type end struct {
	End   string `json:"end,omitempty"`
	Error string `json:"error,omitempty"`
}

func main() {
	gz := flag.Bool("gzip", false, "the input is gzip-compressed")
	flag.Parse()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	var in io.Reader = bufio.NewReaderSize(os.Stdin, 1<<16)
	if *gz {
		z, err := gzip.NewReader(in)
		if err != nil {
			enc.Encode(end{Error: err.Error()})
			return
		}
		in = z
	}
	r := tar.NewReader(in)
	for {
		h, err := r.Next()
		if err == io.EOF {
			enc.Encode(end{End: "eof"})
			return
		}
		if err != nil {
			enc.Encode(end{Error: err.Error()})
			return
		}
		enc.Encode(entry{
			Name:     hex.EncodeToString([]byte(h.Name)),
			Linkname: hex.EncodeToString([]byte(h.Linkname)),
			Typeflag: h.Typeflag,
			Size:     h.Size,
		})
	}
}
