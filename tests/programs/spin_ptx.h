// PTX of `spin_ns(u64 ns)` as nvcc emits it for sm_90: spins on %globaltimer.
#pragma once
static const char kSpinPtx[] = R"(
.version 8.0
.target sm_90
.address_size 64

.visible .entry spin_ns(
	.param .u64 spin_ns_param_0
)
{
	.reg .pred 	%p<2>;
	.reg .b64 	%rd<6>;

	ld.param.u64 	%rd2, [spin_ns_param_0];
	mov.u64 	%rd3, %globaltimer;
$L__BB0_1:
	mov.u64 	%rd4, %globaltimer;
	sub.s64 	%rd5, %rd4, %rd3;
	setp.lt.u64 	%p1, %rd5, %rd2;
	@%p1 bra 	$L__BB0_1;
	ret;
}

.visible .entry touch(
	.param .u64 touch_param_0,
	.param .u32 touch_param_1,
	.param .align 8 .b8 touch_param_2[16]
)
{
	ret;
}
)";
