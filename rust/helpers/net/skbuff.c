// SPDX-License-Identifier: GPL-2.0

#include <linux/skbuff.h>
#include <net/dst.h>

__rust_helper struct sk_buff *rust_helper_alloc_skb(unsigned int size,
						    gfp_t priority)
{
	return alloc_skb(size, priority);
}

__rust_helper struct dst_entry *rust_helper_skb_dst(const struct sk_buff *skb)
{
	return skb_dst(skb);
}

__rust_helper void rust_helper_skb_dst_drop(struct sk_buff *skb)
{
	skb_dst_drop(skb);
}

__rust_helper void rust_helper_skb_dst_set(struct sk_buff *skb,
					   struct dst_entry *dst)
{
	skb_dst_set(skb, dst);
}

__rust_helper void rust_helper_nf_reset_ct(struct sk_buff *skb)
{
	nf_reset_ct(skb);
}

__rust_helper void *rust_helper___skb_push(struct sk_buff *skb,
					   unsigned int len)
{
	return __skb_push(skb, len);
}

__rust_helper void rust_helper_skb_reserve(struct sk_buff *skb, int len)
{
	skb_reserve(skb, len);
}

__rust_helper unsigned int rust_helper_skb_headroom(const struct sk_buff *skb)
{
	return skb_headroom(skb);
}

__rust_helper int rust_helper_skb_tailroom(const struct sk_buff *skb)
{
	return skb_tailroom(skb);
}

__rust_helper int rust_helper_skb_cow_head(struct sk_buff *skb,
					   unsigned int headroom)
{
	return skb_cow_head(skb, headroom);
}

__rust_helper struct dst_entry *rust_helper_dst_clone(struct dst_entry *dst)
{
	return dst_clone(dst);
}

__rust_helper struct neighbour *
rust_helper_dst_neigh_lookup_skb(const struct dst_entry *dst,
				 struct sk_buff *skb)
{
	return dst_neigh_lookup_skb(dst, skb);
}
