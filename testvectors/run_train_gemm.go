package testvectors

import "github.com/freqkv/freqkv/shaders"

func gemmOpts(a *args) shaders.GEMMOptions {
	return shaders.GEMMOptions{TransA: a.flag("ta"), TransB: a.flag("tb"), Alpha: a.float("alpha"), Accumulate: a.flag("acc"),
		AOff: a.opt("aoff"), BOff: a.opt("boff"), COff: a.opt("coff"), LDA: a.opt("lda"), LDB: a.opt("ldb"), LDC: a.opt("ldc")}
}
