// SPDX-License-Identifier: GPL-2.0

#include <net/xfrm.h>

__rust_helper struct dst_entry *
rust_helper_xfrm_dst_child(const struct dst_entry *dst)
{
	return xfrm_dst_child(dst);
}

__rust_helper struct net *rust_helper_xs_net(struct xfrm_state *x)
{
	return xs_net(x);
}

__rust_helper void rust_helper_XFRM_INC_STATS(struct net *net, int field)
{
	XFRM_INC_STATS(net, field);
}
