-- lucid.nn.utils: placeholder until the family lands.
return function(nn, P) end
