package viewsvc

import (
	"reflect"
	"testing"
)

func holding(partition int, kind, state string, lag int64) Holding {
	return Holding{Partition: partition, Kind: kind, State: state, Lag: lag}
}

func member(id, role string, generation int64, sequence uint64, held ...Holding) Member {
	return Member{ID: id, Role: role, Endpoint: id + ":1", Generation: generation,
		Sequence: sequence, Tables: []Table{{Topic: "t", Partitioner: "fnv1a",
			PartitionCount: 4, Partitions: held}}}
}

func TestOwnersPutTheWinningActiveOwnerFirstThenTheBestOthers(t *testing.T) {
	members := []Member{
		member("view-slow", "view", 0, 1, holding(2, "replica", "running", 9)),
		member("old", "processor", 3, 9, holding(2, "active", "running", 0)),
		member("new", "processor", 4, 1, holding(2, "active", "running", 0)),
		member("recovering", "view", 0, 1, holding(2, "replica", "recovering", 0)),
		member("unknown-lag", "view", 0, 1, holding(2, "replica", "running", -1)),
		member("view-fast", "view", 0, 1, holding(2, "replica", "running", 1)),
		member("other-partition", "view", 0, 1, holding(1, "replica", "running", 0)),
	}
	var ids []string
	for _, o := range Owners(members, "t", 2) {
		ids = append(ids, o.MemberID)
	}
	want := []string{"new", "view-fast", "view-slow", "unknown-lag", "recovering"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("Owners = %v; want %v (generation 4 beats 3, running before recovering, "+
			"least lag first, unknown last)", ids, want)
	}
}

func TestRoutesAreTheEligibleHoldersThenTheFallbacks(t *testing.T) {
	members := []Member{
		member("router", "router", 0, 1),
		member("owner", "processor", 1, 1, holding(0, "active", "running", 0),
			holding(1, "active", "running", 0), holding(2, "active", "running", 0),
			holding(3, "active", "running", 0)),
		member("view", "view", 0, 1, holding(0, "replica", "running", 5),
			holding(1, "replica", "running", 5), holding(2, "replica", "running", 5),
			holding(3, "replica", "running", 5)),
	}
	key := []byte("user-1")
	cases := []struct {
		name    string
		options ReadOptions
		want    []string
	}{
		{"any", ReadOptions{}, []string{"owner:1", "view:1", "seed:1", "router:1"}},
		{"active", ReadOptions{Consistency: Active}, []string{"owner:1", "seed:1", "router:1", "view:1"}},
		{"max lag 2", ReadOptions{MaxLag: 2}, []string{"owner:1", "seed:1", "router:1", "view:1"}},
	}
	for _, c := range cases {
		got := keyRoutes(members, []string{"seed:1"}, "t", [][]byte{key}, c.options)[0]
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: routes %v; want %v", c.name, got, c.want)
		}
	}
	unknown := keyRoutes(members, []string{"seed:1"}, "other", [][]byte{key}, ReadOptions{})[0]
	if want := []string{"seed:1", "router:1", "owner:1", "view:1"}; !reflect.DeepEqual(unknown, want) {
		t.Errorf("an unannounced table: routes %v; want the fallbacks %v", unknown, want)
	}
}
