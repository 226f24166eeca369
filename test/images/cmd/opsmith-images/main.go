// Command opsmith-images writes the container images of the real-node
// testbed as docker-archives, one per image, and an index images.json,
// skipping images whose inputs did not change. See package
// opsmith.io/opsmith/test/images.
//
//	opsmith-images [-bin bin] [-out bin/images] [-manager-ref ref] [name...]
//
// With names, only those images are built (the index keeps the others).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"opsmith.io/opsmith/test/images"
)

func main() {
	binDir := flag.String("bin", "bin", "the repository's bin directory, holding the binaries `make images` builds")
	outDir := flag.String("out", "", "output directory of the archives and images.json (default <bin>/images)")
	managerRef := flag.String("manager-ref", images.ManagerRef, "reference of the manager image")
	list := flag.Bool("list", false, "list the image names and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] [image name...]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if *list {
		for _, img := range images.All() {
			fmt.Println(img.Name)
		}
		return
	}
	start := time.Now()
	opts := images.Options{BinDir: *binDir, OutDir: *outDir, ManagerRef: *managerRef, Log: os.Stdout}
	results, err := images.BuildAll(opts, flag.Args()...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "opsmith-images: %v\n", err)
		os.Exit(1)
	}
	built := 0
	for _, r := range results {
		if r.Built {
			built++
		}
	}
	fmt.Printf("%d images (%d written) in %s\n", len(results), built, time.Since(start).Round(10*time.Millisecond))
}
