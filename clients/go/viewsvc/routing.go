package viewsvc

import "sort"

// eligible are the owners that may answer a read with options, best first: running, with an
// endpoint, only the active owner for ACTIVE, within MaxLag when set (an unknown lag is
// not); the least lagged first, ties in the owners' order.
func eligible(owners []Owner, options ReadOptions) []Owner {
	var chosen []Owner
	for _, o := range owners {
		if o.Endpoint == "" || o.State != "running" {
			continue
		}
		if options.Consistency == Active && o.Kind != "active" {
			continue
		}
		if options.MaxLag > 0 && (o.Lag < 0 || o.Lag > options.MaxLag) {
			continue
		}
		chosen = append(chosen, o)
	}
	sort.SliceStable(chosen, func(i, j int) bool {
		return lagOrder(chosen[i].Lag) < lagOrder(chosen[j].Lag)
	})
	return chosen
}

// fallbacks are the nodes that forward any read: the given targets, then routers, then the
// other members.
func fallbacks(targets []string, members []Member) []string {
	var routers, others []string
	for _, m := range members {
		if m.Endpoint == "" {
			continue
		}
		if m.Role == "router" {
			routers = append(routers, m.Endpoint)
		} else {
			others = append(others, m.Endpoint)
		}
	}
	return unique(append(append(append([]string{}, targets...), routers...), others...))
}

// keyRoutes are, per key, the nodes to try in order: its partition's eligible holders, then
// the fallbacks (all of them when the table or its partitioner is not known here).
func keyRoutes(members []Member, targets []string, table string, keys [][]byte,
	options ReadOptions) [][]string {
	fallback := fallbacks(targets, members)
	info := tableInfo(members, table)
	byPartition := map[int][]string{}
	routes := make([][]string, len(keys))
	for i, key := range keys {
		routes[i] = fallback
		if info == nil {
			continue
		}
		partition, err := PartitionOf(info.Partitioner, key, info.PartitionCount)
		if err != nil {
			continue
		}
		if _, known := byPartition[partition]; !known {
			var direct []string
			for _, o := range eligible(Owners(members, table, partition), options) {
				direct = append(direct, o.Endpoint)
			}
			byPartition[partition] = unique(append(direct, fallback...))
		}
		routes[i] = byPartition[partition]
	}
	return routes
}

func unique(endpoints []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range endpoints {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}
